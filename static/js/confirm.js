// Ask before submitting a form marked .confirm-form (e.g. "Revoke" on Status Forwarding).
// The question is in the form's data-confirm attribute, already translated.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.classList.contains("confirm-form")) {
    return;
  }
  if (!window.confirm(form.dataset.confirm || "")) {
    event.preventDefault();
  }
});
