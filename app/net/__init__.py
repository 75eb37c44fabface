"""Transport shared by every ZeroMQ endpoint: the message envelope, request/reply, CURVE, ports."""
