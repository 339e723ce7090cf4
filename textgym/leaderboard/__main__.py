import sys

from textgym.leaderboard.cli import main

sys.exit(main())
