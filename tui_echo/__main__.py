from tui_echo.consoles.tab_process import end_with_web_server

end_with_web_server()  # first of all: a browser tab's console must not outlive its web server, even while it starts

from tui_echo.cli import main  # noqa: E402  (after the line above: loading it takes a while)

raise SystemExit(main())
