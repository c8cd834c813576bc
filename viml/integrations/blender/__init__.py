"""The Blender add-on lives in viml_vse/ (a package of Blender's, copied by `viml integrations install`)."""
