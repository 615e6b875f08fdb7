"""What the monitor shows, as pure data: table rows, stats, feed lines, send text, hex dumps.

These modules import neither trio nor Textual.
"""
