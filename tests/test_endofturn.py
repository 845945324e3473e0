"""endofturn.EndOfTurn: what we write to a TCP socket leaves at the end of
the reactor turn that wrote it, with one flush call per turn; everything
else keeps Twisted's own way."""

from twisted.internet import defer, error, protocol, reactor, tcp
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from intermud3.endofturn import EndOfTurn


class Sink(protocol.Protocol):
    def __init__(self):
        self.received = b""
        self.arrived = defer.Deferred()
        self.lost = defer.Deferred()

    def dataReceived(self, data):
        self.received += data
        if not self.arrived.called:
            self.arrived.callback(None)

    def connectionLost(self, reason):
        self.lost.callback(None)


class FakeConnection(tcp.Connection):
    """A tcp.Connection without a socket, for the bookkeeping alone."""

    def __init__(self, write_result=None):
        self.connected = 1
        self.disconnecting = False
        self.write_result = write_result
        self.writes = 0
        self.restarted = 0

    def doWrite(self):
        self.writes += 1
        return self.write_result

    def startWriting(self):
        self.restarted += 1


class BookkeepingTests(unittest.SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.flush = EndOfTurn(self.clock)

    def test_one_call_per_turn_flushes_each_transport_once(self):
        first, second = FakeConnection(), FakeConnection()
        for transport in (first, second, first, first):
            self.flush.written(transport)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(0)
        self.assertEqual((first.writes, second.writes), (1, 1))
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.flush.written(second)      # the next turn gets its own call
        self.clock.advance(0)
        self.assertEqual((first.writes, second.writes), (1, 2))

    def test_other_transports_keep_twisteds_way(self):
        tls = FakeConnection()
        tls.TLS = True
        for transport in (StringTransport(), tls):
            self.flush.written(transport)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_closing_or_closed_transports_are_left_alone(self):
        closing, closed = FakeConnection(), FakeConnection()
        closing.disconnecting = True
        closed.connected = 0
        self.flush.written(closing)
        self.flush.written(closed)
        self.clock.advance(0)
        self.assertEqual((closing.writes, closed.writes), (0, 0))

    def test_a_lost_connection_goes_back_to_the_reactor(self):
        lost, fine = FakeConnection(error.ConnectionLost()), FakeConnection()
        self.flush.written(lost)
        self.flush.written(fine)
        self.clock.advance(0)
        self.assertEqual((lost.restarted, fine.restarted), (1, 0))

    def test_stop_cancels_the_pending_flush(self):
        transport = FakeConnection()
        self.flush.written(transport)
        self.flush.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(transport.writes, 0)


class LoopbackTests(unittest.TestCase):
    """Real sockets on the real reactor."""

    @defer.inlineCallbacks
    def setUp(self):
        self.sink = Sink()
        factory = protocol.Factory.forProtocol(lambda: self.sink)
        self.port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.client = yield protocol.ClientCreator(reactor, protocol.Protocol).connectTCP(
            "127.0.0.1", self.port.getHost().port)
        self.addCleanup(self.close)

    def close(self):
        self.client.transport.loseConnection()
        return self.sink.lost

    @defer.inlineCallbacks
    def test_bytes_leave_before_the_reactor_polls_again(self):
        transport = self.client.transport
        flush = EndOfTurn(reactor)
        transport.writeSequence((b"hello", b"\n"))
        flush.written(transport)
        self.assertIn(transport, reactor.getWriters())   # Twisted's way: the next poll
        flush._flush()
        self.assertNotIn(transport, reactor.getWriters())
        self.assertEqual(transport.dataBuffer, b"")
        yield self.sink.arrived
        self.assertEqual(self.sink.received, b"hello\n")
