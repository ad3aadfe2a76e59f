"""The NetSpec: a network described as data (stages, blocks, branches, layers), and its one walk."""
