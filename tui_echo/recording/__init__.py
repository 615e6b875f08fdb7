"""Recording a server's clients, every byte (``--record``), and reading recordings back."""
