"""The monitor's screens: the main one (stats, table, feed, send box), a client's own screen, help, the
ban list, the reply rules and the one yes/no question.

They never import trio, nor the app: what they need from it they ask for with a message.
"""
