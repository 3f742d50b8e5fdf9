from livegesture.cli import main

raise SystemExit(main())
