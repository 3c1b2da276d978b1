from nwb_cloud.cli import main

raise SystemExit(main())
