# twistd plugin: `twistd -n i3router --port 8787 --name '*test'` (no __init__.py here, on purpose).
from twisted.application.service import ServiceMaker

i3router = ServiceMaker(
    "Intermud-3 test router", "intermud3.testing.router_tap",
    "A local Dead Souls-like I3 router, for trying an I3 client offline.", "i3router")
