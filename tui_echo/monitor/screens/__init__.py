"""Modal screens of the monitor: confirmations and lists that sit over the main view."""
