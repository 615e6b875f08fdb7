from tui_echo.cli import main

raise SystemExit(main())
