"""An in-process emulator of Matrix Authentication Service 1.22 for tests.

It serves the OAuth 2.0 token endpoint (client credentials) and the admin API
for user registration tokens with the status codes, bodies and content types
of the real server, and adds a control surface for test setup and faults.
"""

from .app import MasEmulator, RequestRecord
from .faults import FAULT_KINDS, Fault
from .oauth import Client

__all__ = ["FAULT_KINDS", "Client", "Fault", "MasEmulator", "RequestRecord"]
