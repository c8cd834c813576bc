"""viml.engine"""
