"""Offline stand-in for the get-pip.py that ansible-test downloads from a host we cannot reach.

ansible-test runs it with the python of a fresh, empty virtual environment and the arguments of a
pip install (the pinned pip, then --no-setuptools/--no-wheel, which only get-pip.py knows).
Python's bundled pip is installed first; pip then installs what ansible-test asked for from PyPI.
"""

import subprocess
import sys

GET_PIP_ONLY_OPTIONS = ('--no-setuptools', '--no-wheel')

pip_args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_OPTIONS]
subprocess.check_call([sys.executable, '-m', 'ensurepip', '--upgrade', '--default-pip'])
subprocess.check_call([sys.executable, '-m', 'pip', 'install', *pip_args])
