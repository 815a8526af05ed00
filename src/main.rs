fn main() {
    yew::Renderer::<convlens_app::app::App>::new().render();
}
