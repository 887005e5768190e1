"""Entry point of the zipapp build.sh makes: sluice-plugin-policy-python-uppercase."""

import sluice_plugin
import uppercase

if __name__ == "__main__":
    sluice_plugin.serve(uppercase.describe(), uppercase.register)
