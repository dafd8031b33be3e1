"""Options of the ``lines`` transport (the ``[[transports]]`` table of a configuration file)."""

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["LinesSettings"]


class LinesSettings(BaseModel):
    """``kind = "lines"``.

    Attributes:
        host: address to listen on (default loopback only).
        port: TCP port (0: any free port, see ``LinesTransport.port``).
        decoder: decoder for each line (any registered name; default ``result-csv`` from this package).
        max_line_bytes: longest line accepted, in bytes; a longer one closes the connection.
    """

    model_config = ConfigDict(extra="forbid")
    host: str = "127.0.0.1"
    port: int = Field(default=9700, ge=0, le=65535)
    decoder: str = "result-csv"
    max_line_bytes: int = Field(default=65536, ge=16)
