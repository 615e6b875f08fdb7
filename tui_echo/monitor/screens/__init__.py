"""The monitor's screens beyond the main one: a client's own screen, help, confirmations, the ban list.

They never import trio.
"""
