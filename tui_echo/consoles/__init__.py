"""Consoles of a running server, over its control socket: attach, list, events, ctl, web."""

SUBCOMMANDS = ("attach", "list", "events", "ctl", "web")
SUBCOMMANDS_HELP = """\
consoles of a running server (each has --help):
  tui-echo attach [TARGET]         open the monitor on a running server; q detaches, the server carries on
  tui-echo attach TARGET TARGET... | --all
                                   several servers in one console, with a server column (#12@7002)
  tui-echo list                    the running servers: port, pid, uptime, clients, control socket
  tui-echo events [TARGET] [--json]
                                   stream a running server's events, like docker events
  tui-echo ctl [TARGET] COMMAND    clients [--json] [--filter EXPR] | rules [--json]
                                   | kick ID (or --filter EXPR [--yes]) | kick-all | label ID TEXT
                                   | send ID TEXT | broadcast TEXT | record start FILE|stop|status
                                   | fault ID SPEC|clear | faults [--json] | stop | reload
  tui-echo web [TARGET] [--http-port 8000]
                                   the attached console in a browser, one per tab (127.0.0.1 only, with a token)
TARGET is a port, a control socket path, or nothing for the only running server.

a demo, nothing else to start:
  tui-echo demo [--speed X] [--port PORT]
                                   the monitor with a cast of simulated clients: chat, a sensor, bursts, timeouts

recordings (tui-echo --record FILE):
  tui-echo replay FILE... [--speed X] [--from S] [--to S] [--client N] [--headless [--json]]
                                   the monitor as it was: p pauses, ←/→ seek 10 s, [ ] speed
  tui-echo export FILE... --pcapng OUT
                                   the recording as a pcapng capture: one TCP stream per client, for Wireshark

load any echo server:
  tui-echo load [HOST:]PORT [-c N] [-d SECONDS] [--size BYTES | --message TEXT] [--rate N] [--pipeline N]
                [--ramp SECONDS] [--workers N] [--json]
                                   check every echoed byte; latency percentiles, vmbench-style JSON"""
