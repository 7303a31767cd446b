def build_tab() -> None:
    import gradio as gr  # only the web UI calls this, with gradio available

    gr.Markdown("Recorder tab", elem_id="recorder_tab_text")
