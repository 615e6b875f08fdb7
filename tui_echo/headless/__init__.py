"""Headless mode: the server with its events written as a log on stdout. Imports no Textual."""
