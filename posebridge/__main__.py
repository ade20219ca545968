from posebridge.cli import main

raise SystemExit(main())
