"""The outbound path: every packet we write to the router goes through here.

* frames.py: ``encode`` (each packet encoded once into an ``OutFrame``)
  and ``Unsendable``, the one exception of the path;
* lane.py: ``PacedLane``, the pacer's gate and the transient lane the
  router link owns (``SendResult`` says what became of a packet);
* outbox.py: ``Outbox``, the durable lane for messages, mirrored in
  memory; outcomes.py (``message_status``), repeats.py
  (``client_msg_id``), expiry.py and deadlines.py serve it.
"""

from intermud3.outbound.frames import OutFrame, Unsendable, encode, encode_field, frame_size
from intermud3.outbound.lane import PacedLane, SendResult
from intermud3.outbound.outbox import DEFAULT_MAX_REMEMBERED, DRAIN_BATCH, Outbox

__all__ = ["Unsendable", "OutFrame", "encode", "encode_field", "frame_size", "SendResult",
           "PacedLane", "Outbox", "DEFAULT_MAX_REMEMBERED", "DRAIN_BATCH"]
