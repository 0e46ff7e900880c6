"""`python -m orchestrator.providers.simulators.clay`: run the simulator standalone."""

from orchestrator.providers.simulators.clay.cli import main

raise SystemExit(main())
