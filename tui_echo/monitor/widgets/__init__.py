"""The monitor's widgets. They read models and post messages; they never import trio."""
