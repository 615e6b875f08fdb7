"""tui-echo: a multi-client TCP echo server you watch and steer live from the terminal."""
