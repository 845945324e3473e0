from twisted.application.service import ServiceMaker

intermud3 = ServiceMaker("Intermud-3 gateway", "intermud3.tap", "Intermud-3 gateway with a JSON-RPC API", "intermud3")
