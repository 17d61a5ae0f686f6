// orghooks dashboard: the only script. Copy buttons copy the text of the
// element their data-copy names.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source || !navigator.clipboard) return;
  navigator.clipboard.writeText(source.textContent).then(() => {
    button.textContent = "Copied";
  });
});

// A portal link carries its one-time token in the URL's fragment: post it
// once (the answer sets the session) and drop it from the address bar.
const portal = document.getElementById("portal-open");
if (portal && location.hash.length > 1) {
  portal.elements.link.value = location.hash.slice(1);
  history.replaceState(null, "", location.pathname);
  portal.submit();
}
