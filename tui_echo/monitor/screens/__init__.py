"""The monitor's screens beyond the main one: a client's own screen, help. They never import trio."""
