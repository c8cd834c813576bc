"""Everything made up for trying and testing ViML, kept out of the run time: the generated demo world
(real media files from hidden attributes), `viml demo`'s end-to-end run, rendered reference music for
the music model's parity checks, the stand-in language model server and test-only analyzers."""
