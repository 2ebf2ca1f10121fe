"""An embedded sandbox cloud API (networks, VMs, load balancers, DNS) that is slow, flaky and rate-limited.

It is the default target of the main playbook and of the tests; see docs/sandbox.md.
"""

from orchestrator.sandbox.app import create_app
from orchestrator.sandbox.server import RunningSandbox, SandboxProcess, start_sandbox
from orchestrator.sandbox.state import SandboxSettings

__all__ = ["RunningSandbox", "SandboxProcess", "SandboxSettings", "create_app", "start_sandbox"]
