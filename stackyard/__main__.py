from stackyard.cli import main

raise SystemExit(main())
