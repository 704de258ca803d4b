"""stackyard: ship an OpenStack release as wheels, virtualenv debs and images."""

__version__ = "0.1.0"
