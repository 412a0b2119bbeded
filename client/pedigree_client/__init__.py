"""pedigree-client: the Python client and `pedigree` command line of the Pedigree registry."""
