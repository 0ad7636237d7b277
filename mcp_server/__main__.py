"""`python -m mcp_server`: the same as `promstack mcp`."""

from mcp_server.server import main

main()
