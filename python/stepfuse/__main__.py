from stepfuse.cli import main

raise SystemExit(main())
