"""pywats-lines: an example plug-in for pyWATS events, one of each kind.

- transport ``lines``: a TCP server; each line a tester writes is one message, answered ``ACK <n>`` once
  the bus is done with it or ``NAK <n>`` when the outcome could not be recorded (send it again);
- decoder ``result-csv``: ``station,serial,result`` lines to ``test.result`` events;
- handler ``jsonl-file``: appends every event it gets to a JSON Lines file.
"""

from .codec import decode_result_csv
from .errors import LinesError
from .handler import JsonlFileSink
from .settings import LinesSettings
from .transport import LinesTransport

__all__ = ["JsonlFileSink", "LinesError", "LinesSettings", "LinesTransport", "decode_result_csv"]
