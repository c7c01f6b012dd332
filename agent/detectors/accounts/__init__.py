"""The outsourced-account detector (外包账号): contractor accounts held to their role."""
