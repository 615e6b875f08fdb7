"""``tui-echo load``: a load client for any echo server that checks every echoed byte. Imports no Textual."""
