"""nniray.compression"""
