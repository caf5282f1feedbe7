"""``warehouse report``: the leadership report, rendered from the published serving file.

``data.load_report_data`` queries the marts, ``charts`` draws them with matplotlib as
inline SVG, ``narrative`` writes the summary of what changed and the glossary,
``render.build_report`` writes one self-contained dated HTML file (no network: CSS, JS and
charts inline) and ``mail.send_report`` emails it.
"""
