"""A small self-hosted realtime chat: the core logic and its gevent edge."""

__version__ = "0.1.0"
