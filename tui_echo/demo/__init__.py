"""``tui-echo demo``: the monitor with a cast of simulated clients, real TCP connections from a process of their own."""
