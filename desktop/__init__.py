"""viml.desktop"""
