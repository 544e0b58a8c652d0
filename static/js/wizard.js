// The share wizard: recipient picking (quick search, favorites, detailed
// search, extra recipients), the "Valid till" date picker, and the
// confirmation pop-up. Every control is a real button or input, so the pages
// work by keyboard; the server checks everything again.
(() => {
  "use strict";

  const truthy = (value) => ["true", "1", "True", "yes"].includes(String(value));

  function fetchFragment(url) {
    return fetch(url, {
      credentials: "same-origin",
      headers: { "HX-Request": "true", "X-Requested-With": "XMLHttpRequest" },
    }).then((response) => {
      if (!response.ok) throw new Error(String(response.status));
      return response.text();
    });
  }

  // Make the directory's result elements reachable and usable by keyboard.
  function prepareItems(container) {
    container.querySelectorAll("[data-key]").forEach((item) => {
      if (!item.matches("a, button, input")) {
        item.setAttribute("tabindex", "0");
        item.setAttribute("role", "button");
      }
      item.classList.add("picker-item");
    });
    return container.querySelectorAll("[data-key]").length;
  }

  function message(container, text) {
    container.replaceChildren();
    const p = document.createElement("p");
    p.className = "muted small picker-message";
    p.textContent = text;
    container.append(p);
  }

  // ── Recipients step ────────────────────────────────────────────────
  function initPicker(picker) {
    const prefix = picker.dataset.prefix;
    const rowsEl = document.getElementById("recipient-rows");
    const template = document.getElementById("recipient-row-template");
    const addButton = document.getElementById("recipient-add");
    const total = picker.querySelector(`input[name="${prefix}-TOTAL_FORMS"]`);
    const max = Math.max(parseInt(picker.dataset.max, 10) || 1, 1);
    const dialog = document.getElementById("detailed-search-dialog");
    const dialogBody = document.getElementById("detailed-search-body");
    const indexPattern = new RegExp(`${prefix}-(\\d+|__prefix__)-`, "g");
    const renamed = ["name", "id", "for", "aria-controls", "aria-describedby"];
    let dialogRow = null;

    const rows = () => Array.from(rowsEl.querySelectorAll("[data-row]"));
    const keyInput = (row) => row.querySelector(`input[name$="-key"]`);

    function renumber() {
      rows().forEach((row, index) => {
        row.querySelectorAll("*").forEach((el) => {
          renamed.forEach((attr) => {
            const value = el.getAttribute(attr);
            if (value) el.setAttribute(attr, value.replace(indexPattern, `${prefix}-${index}-`));
          });
        });
        row.querySelector(".recipient-index").textContent = `${index + 1}.`;
      });
      const count = rows().length;
      total.value = String(count);
      addButton.disabled = count >= max;
      rows().forEach((row) => {
        row.querySelector(".recipient-remove").hidden = count <= 1 && !keyInput(row).value;
      });
    }

    function applyCapabilities(row, hasMobile, hasEmail) {
      [
        ["require_otp", hasMobile, "otp"],
        ["send_mail", hasEmail, "mail"],
      ].forEach(([name, possible, note]) => {
        const box = row.querySelector(`input[name$="-${name}"]`);
        box.disabled = !possible;
        box.checked = possible ? box.defaultChecked : false;
        row.querySelector(`[data-note="${note}"]`).hidden = possible;
      });
    }

    function choose(row, data) {
      const duplicate = rows().some((other) => other !== row && keyInput(other).value === data.key);
      const results = row.querySelector(".recipient-results");
      if (duplicate) {
        message(results, picker.dataset.chosenTwice);
        return;
      }
      keyInput(row).value = data.key;
      row.querySelector(".recipient-name").textContent = data.name || data.key;
      row.querySelector(".recipient-details").textContent = data.details || "";
      row.querySelector(".recipient-pick").hidden = true;
      row.querySelector(".recipient-chosen").hidden = false;
      row.querySelector(".recipient-favorites").hidden = true;
      results.replaceChildren();
      row.querySelectorAll(".field-error").forEach((el) => el.remove());
      applyCapabilities(row, truthy(data.hasMobile), truthy(data.hasEmail));
      markFavorite(row, truthy(data.favorite));
      renumber();
      row.querySelector(".recipient-change").focus();
    }

    // A recipient who is a favorite already needs no star to become one.
    function markFavorite(row, isFavorite) {
      const star = row.querySelector(`input[name$="-star"]`);
      row.querySelector('[data-note="favorite"]').hidden = !isFavorite;
      star.closest(".check").hidden = isFavorite;
      if (isFavorite) star.checked = false;
    }

    function unchoose(row) {
      keyInput(row).value = "";
      markFavorite(row, false);
      row.querySelector(".recipient-pick").hidden = false;
      row.querySelector(".recipient-chosen").hidden = true;
      applyCapabilities(row, true, true);
      renumber();
      row.querySelector(".recipient-query").focus();
    }

    function addRow() {
      if (rows().length >= max) return;
      const fragment = template.content.cloneNode(true);
      rowsEl.append(fragment);
      renumber();
      rows().at(-1).querySelector(".recipient-query").focus();
    }

    function removeRow(row) {
      if (rows().length <= 1) {
        unchoose(row);
        return;
      }
      const next = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      renumber();
      const target = next?.querySelector(".recipient-chosen:not([hidden]) .recipient-change")
        || next?.querySelector(".recipient-query");
      (target || addButton).focus();
    }

    let searchTimer = null;
    let searchSerial = 0;
    function search(row) {
      const query = row.querySelector(".recipient-query").value.trim();
      const results = row.querySelector(".recipient-results");
      window.clearTimeout(searchTimer);
      if (query.length < 2 || !picker.dataset.searchUrl) {
        results.replaceChildren();
        return;
      }
      searchTimer = window.setTimeout(() => {
        const serial = ++searchSerial;
        const url = `${picker.dataset.searchUrl}?q=${encodeURIComponent(query)}`;
        fetchFragment(url)
          .then((html) => {
            if (serial !== searchSerial) return;
            results.innerHTML = html;
            if (!prepareItems(results)) message(results, picker.dataset.noResults);
          })
          .catch(() => message(results, picker.dataset.searchFailed));
      }, 250);
    }

    function toggleFavorites(row, button) {
      const list = row.querySelector(".recipient-favorites");
      const open = list.hidden;
      list.hidden = !open;
      button.setAttribute("aria-expanded", String(open));
      if (!open || list.dataset.loaded || !picker.dataset.favoritesUrl) return;
      fetchFragment(picker.dataset.favoritesUrl)
        .then((html) => {
          list.innerHTML = html;
          list.dataset.loaded = "1";
          if (!prepareItems(list)) message(list, picker.dataset.noFavorites);
          list.querySelector("[data-key]")?.focus();
        })
        .catch(() => message(list, picker.dataset.searchFailed));
    }

    function showResults(html) {
      const results = dialogBody.querySelector("#detailed-results");
      const holder = document.createElement("div");
      holder.innerHTML = html;
      const fresh = holder.querySelector("#detailed-results") || holder;
      fresh.id = "detailed-results";
      fresh.setAttribute("aria-live", "polite");
      results.replaceWith(fresh);
      prepareItems(fresh);
      fresh.querySelector("[data-key]")?.focus();
    }

    function searchInDialog(url) {
      fetchFragment(url)
        .then(showResults)
        .catch(() => message(dialogBody.querySelector("#detailed-results"), picker.dataset.searchFailed));
    }

    // The directory's detailed-search page gives the criteria form; its results
    // come back as fragments (with "pick" buttons) and replace #detailed-results.
    function loadDialogForm() {
      fetch(picker.dataset.detailedUrl, { credentials: "same-origin" })
        .then((response) => response.text())
        .then((html) => {
          const page = new DOMParser().parseFromString(html, "text/html");
          const form = page.querySelector("main form.directory-form, main form[method=get]");
          dialogBody.replaceChildren();
          if (!form) throw new Error("no form");
          Array.from(form.attributes)
            .filter((attr) => attr.name.startsWith("hx-"))
            .forEach((attr) => form.removeAttribute(attr.name));
          const mode = form.querySelector('input[name="mode"]');
          if (mode) mode.value = "pick";
          const results = document.createElement("div");
          results.id = "detailed-results";
          dialogBody.append(document.importNode(form, true), results);
          dialogBody.dataset.loaded = "1";
          dialogBody.querySelector("input:not([type=hidden]), select")?.focus();
        })
        .catch(() => message(dialogBody, picker.dataset.searchFailed));
    }

    function openDialog(row) {
      dialogRow = row;
      if (!picker.dataset.detailedUrl || !dialog) return;
      dialog.showModal();
      if (dialogBody.dataset.loaded) {
        dialogBody.querySelector("input:not([type=hidden]), select")?.focus();
      } else {
        loadDialogForm();
      }
    }

    function pickedItem(event) {
      const item = event.target.closest("[data-key]");
      return item && item.closest(".picker-list, #detailed-search-body") ? item : null;
    }

    rowsEl.addEventListener("input", (event) => {
      if (event.target.matches(".recipient-query")) search(event.target.closest("[data-row]"));
    });
    rowsEl.addEventListener("keydown", (event) => {
      const row = event.target.closest("[data-row]");
      if (!row) return;
      if (event.target.matches(".recipient-query")) {
        if (event.key === "Enter") {
          // Enter picks the first result; it never submits the wizard.
          event.preventDefault();
          const first = row.querySelector(".recipient-results [data-key]");
          if (first) choose(row, first.dataset);
        } else if (event.key === "ArrowDown") {
          event.preventDefault();
          row.querySelector(".recipient-results [data-key]")?.focus();
        }
        return;
      }
      const item = pickedItem(event);
      if (item && (event.key === "Enter" || event.key === " ")) {
        event.preventDefault();
        choose(row, item.dataset);
      } else if (item && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
        event.preventDefault();
        const items = Array.from(item.closest(".picker-list").querySelectorAll("[data-key]"));
        const next = items[items.indexOf(item) + (event.key === "ArrowDown" ? 1 : -1)];
        (next || row.querySelector(".recipient-query")).focus();
      }
    });
    rowsEl.addEventListener("click", (event) => {
      const row = event.target.closest("[data-row]");
      if (!row) return;
      const item = pickedItem(event);
      if (item) {
        event.preventDefault();
        choose(row, item.dataset);
        return;
      }
      const button = event.target.closest("button");
      if (!button) return;
      if (button.matches(".favorites-toggle")) toggleFavorites(row, button);
      else if (button.matches(".detailed-search-open")) openDialog(row);
      else if (button.matches(".recipient-change")) unchoose(row);
      else if (button.matches(".recipient-remove")) removeRow(row);
    });
    addButton.addEventListener("click", addRow);

    if (dialog) {
      dialog.addEventListener("click", (event) => {
        if (event.target.closest("[data-close-dialog]")) {
          dialog.close();
          return;
        }
        const item = event.target.closest("#detailed-search-body [data-key]");
        if (item && dialogRow) {
          event.preventDefault();
          dialog.close();
          choose(dialogRow, item.dataset);
          return;
        }
        const link = event.target.closest("#detailed-search-body a[href]");
        if (link && link.origin === window.location.origin) {
          event.preventDefault();
          searchInDialog(link.href);
        }
      });
      dialog.addEventListener("keydown", (event) => {
        const item = event.target.closest("#detailed-search-body [data-key]");
        if (item && dialogRow && (event.key === "Enter" || event.key === " ")) {
          event.preventDefault();
          dialog.close();
          choose(dialogRow, item.dataset);
        }
      });
      dialog.addEventListener("submit", (event) => {
        event.preventDefault();
        const form = event.target;
        const action = (form.getAttribute("action") || picker.dataset.detailedUrl).split("?")[0];
        searchInDialog(`${action}?${new URLSearchParams(new FormData(form))}`);
      });
      dialog.addEventListener("close", () => {
        dialogRow?.querySelector(".recipient-change:not([hidden]), .recipient-query")?.focus();
      });
    }

    // Rows the server rendered (going back, or after an error) keep their limits.
    rows().forEach((row) => {
      if (keyInput(row).value) {
        const otp = row.querySelector(`input[name$="-require_otp"]`);
        const mail = row.querySelector(`input[name$="-send_mail"]`);
        if (!truthy(row.dataset.hasMobile) && !otp.checked) otp.disabled = true;
        if (!truthy(row.dataset.hasEmail) && !mail.checked) mail.disabled = true;
      }
    });
    renumber();
  }

  // ── Parameters step ────────────────────────────────────────────────
  function pad(n) {
    return String(n).padStart(2, "0");
  }

  function initDate(text) {
    const picker = document.getElementById(`${text.id}_picker`);
    if (!picker) return;
    picker.hidden = false;
    const toPicker = () => {
      const match = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/.exec(text.value.trim());
      picker.value = match ? `${match[3]}-${pad(match[2])}-${pad(match[1])}` : "";
    };
    picker.addEventListener("change", () => {
      const [year, month, day] = picker.value.split("-");
      if (year) text.value = `${day}/${month}/${year}`;
    });
    text.addEventListener("input", toPicker);
    toPicker();
    const unlimited = document.querySelector('input[name$="-unlimited"]');
    if (unlimited) {
      // With Unlimited ticked no date applies: none is shown, not a greyed one.
      const placeholder = text.dataset.placeholder || "";
      const sync = () => {
        if (unlimited.checked) {
          if (text.value) text.dataset.kept = text.value;
          text.value = "";
          picker.value = "";
          text.placeholder = text.dataset.noEnd || "";
        } else {
          if (!text.value) text.value = text.dataset.kept || text.dataset.default || "";
          text.placeholder = placeholder;
          toPicker();
        }
        text.disabled = unlimited.checked;
        picker.disabled = unlimited.checked;
      };
      unlimited.addEventListener("change", sync);
      sync();
    }
  }

  // The mail language: the page says why it was chosen, or that the sender did.
  function initLanguage() {
    const select = document.querySelector('select[name$="-language"]');
    const reason = document.getElementById("language-reason");
    if (!select || !reason) return;
    select.addEventListener("change", () => {
      reason.textContent = reason.dataset.byHand;
      select.dataset.byHand = "true";
    });
  }

  // What this tab typed on the parameters step, kept in this tab's
  // sessionStorage for its wizard run only, so that the browser's Back and then
  // Next find it again; forgotten once the share is made or another run starts.
  const DRAFT_PREFIX = "share-draft:";

  function forgetDrafts(keep) {
    try {
      Object.keys(sessionStorage)
        .filter((name) => name.startsWith(DRAFT_PREFIX) && name !== keep)
        .forEach((name) => sessionStorage.removeItem(name));
    } catch {
      // Storage may be unavailable (private mode): drafts are a convenience.
    }
  }

  function initDraft(form) {
    const run = form.dataset.run;
    const language = form.querySelector('select[name$="-language"]');
    if (!run || !language) return;
    const key = `${DRAFT_PREFIX}${run}`;
    forgetDrafts(key);
    const fields = () =>
      Array.from(form.elements).filter((el) => el.name && el.name.startsWith("parameters-"));
    const save = () => {
      const values = {};
      fields().forEach((el) => {
        if (el.type === "radio") {
          if (el.checked) values[el.name] = el.value;
        } else if (el.type === "checkbox") {
          values[el.name] = el.checked;
        } else if (!el.disabled) {
          values[el.name] = el.value;
        }
      });
      values.languageByHand = language.dataset.byHand === "true";
      try {
        sessionStorage.setItem(key, JSON.stringify(values));
      } catch {
        // Nothing to keep it in: the server still keeps what "Previous" posts.
      }
    };
    if (form.hasAttribute("data-draft-restore")) {
      let saved = null;
      try {
        saved = JSON.parse(sessionStorage.getItem(key) || "null");
      } catch {
        saved = null;
      }
      if (saved) {
        fields().forEach((el) => {
          if (!(el.name in saved) || el.disabled) return;
          if (el === language && !saved.languageByHand) return;
          const value = saved[el.name];
          if (el.type === "radio") el.checked = el.value === value;
          else if (el.type === "checkbox") el.checked = Boolean(value);
          else el.value = value;
        });
        if (saved.languageByHand) {
          language.dataset.byHand = "true";
          const reason = document.getElementById("language-reason");
          if (reason) reason.textContent = reason.dataset.byHand;
        }
      }
    }
    form.addEventListener("input", save);
    form.addEventListener("change", save);
    save();
  }

  function initLabel() {
    const toggle = document.querySelector('input[name$="-add_label"]');
    const choice = document.getElementById("label-choice");
    if (!toggle || !choice) return;
    const sync = () => {
      choice.hidden = !toggle.checked;
    };
    toggle.addEventListener("change", sync);
    sync();
  }

  // ── Confirmation ───────────────────────────────────────────────────
  function initConfirmation(dialog) {
    const text = document.getElementById("share-info-text");
    const status = document.getElementById("share-info-status");
    const copy = document.getElementById("share-info-copy");
    const fallback = () => {
      // Let the user copy by hand: show and select the plain text.
      text.classList.remove("visually-hidden");
      text.removeAttribute("aria-hidden");
      text.select();
      status.textContent = copy.dataset.copyFailed;
    };
    copy.addEventListener("click", () => {
      if (!navigator.clipboard) {
        fallback();
        return;
      }
      navigator.clipboard
        .writeText(text.value)
        .then(() => {
          status.textContent = copy.dataset.copied;
        })
        .catch(fallback);
    });
    document.getElementById("share-info-open")?.addEventListener("click", () => dialog.showModal());
    dialog.showModal();
  }

  const picker = document.getElementById("recipient-picker");
  if (picker) initPicker(picker);
  const wizardForm = document.getElementById("wizard-form");
  if (wizardForm) initDraft(wizardForm);
  document.querySelectorAll("input.date-text").forEach(initDate);
  initLabel();
  initLanguage();
  const confirmation = document.getElementById("share-info-dialog");
  if (confirmation) {
    forgetDrafts(null);
    initConfirmation(confirmation);
  }
  // After a refused step, start at the first field to correct (it may be far
  // below the fold, under the button that was pressed).
  document
    .querySelector(
      "#wizard-form .has-error :is(input:not([type=hidden]), select, textarea)",
    )
    ?.focus();
})();
