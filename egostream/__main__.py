from egostream.cli import main

raise SystemExit(main())
