"""`kubectl-kubernaut` / `python -m kubectl_kubernaut`."""

import sys

from kubectl_kubernaut.cli import main

if __name__ == "__main__":
    sys.exit(main())
