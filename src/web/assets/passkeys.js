// Passkeys: the one script of gatehouse's pages (served from /assets/passkeys.js, allowed by the
// Content-Security-Policy as 'self'). Every page works without it but the passkey buttons, which
// stay hidden until it runs in a browser that has WebAuthn.
//
// A form marked data-passkey="create" (add a passkey) or "get" (sign in, second factor,
// confirm) asks its data-options URL for a ceremony (the CSRF token posted as a form field), has
// the browser make or use the credential, and submits itself with the ceremony's id and the
// credential as JSON. A "get" form marked data-autofill also offers the passkeys in the
// username field's autofill (conditional mediation) as soon as the page loads.
"use strict";
(() => {
  if (!window.PublicKeyCredential) return;
  const toBytes = (text) => {
    const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    return Uint8Array.from(atob(b64 + "===".slice((b64.length + 3) % 4)), (c) => c.charCodeAt(0)).buffer;
  };
  const toText = (buffer) =>
    btoa(String.fromCharCode(...new Uint8Array(buffer))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

  async function ceremony(form) {
    const body = new URLSearchParams({ csrf_token: form.elements.csrf_token.value });
    const answer = await fetch(form.dataset.options, { method: "POST", body, credentials: "same-origin" });
    const json = await answer.json();
    if (!answer.ok) throw new Error(json.error || "the passkey request was refused");
    return json;
  }

  function made(credential) {
    const r = credential.response;
    return {
      id: credential.id, rawId: toText(credential.rawId), type: credential.type,
      response: {
        attestationObject: toText(r.attestationObject), clientDataJSON: toText(r.clientDataJSON),
        transports: r.getTransports ? r.getTransports() : undefined,
      },
      extensions: credential.getClientExtensionResults(),
    };
  }

  function used(credential) {
    const r = credential.response;
    return {
      id: credential.id, rawId: toText(credential.rawId), type: credential.type,
      response: {
        authenticatorData: toText(r.authenticatorData), clientDataJSON: toText(r.clientDataJSON),
        signature: toText(r.signature), userHandle: r.userHandle ? toText(r.userHandle) : null,
      },
      extensions: credential.getClientExtensionResults(),
    };
  }

  async function create(form) {
    const { ceremony: id, options } = await ceremony(form);
    const key = options.publicKey;
    key.challenge = toBytes(key.challenge);
    key.user.id = toBytes(key.user.id);
    (key.excludeCredentials || []).forEach((c) => { c.id = toBytes(c.id); });
    return [id, made(await navigator.credentials.create({ publicKey: key }))];
  }

  async function get(form, mediation, signal) {
    const { ceremony: id, options } = await ceremony(form);
    const key = options.publicKey;
    key.challenge = toBytes(key.challenge);
    (key.allowCredentials || []).forEach((c) => { c.id = toBytes(c.id); });
    const request = mediation ? { publicKey: key, mediation, signal } : { publicKey: key };
    return [id, used(await navigator.credentials.get(request))];
  }

  function send(form, [id, credential]) {
    form.elements.ceremony.value = id;
    form.elements.credential.value = JSON.stringify(credential);
    form.submit();
  }

  function say(form, error) {
    const place = form.querySelector("[data-passkey-error]");
    if (place) place.textContent = error.name === "NotAllowedError" ? "The passkey was not used." : error.message;
  }

  let autofill = null;
  for (const form of document.querySelectorAll("form[data-passkey]")) {
    form.hidden = false;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (autofill) autofill.abort();
      try {
        send(form, await (form.dataset.passkey === "create" ? create(form) : get(form)));
      } catch (error) {
        say(form, error);
      }
    });
    if (form.dataset.autofill !== undefined && PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(async (available) => {
        if (!available) return;
        autofill = new AbortController();
        try {
          send(form, await get(form, "conditional", autofill.signal));
        } catch (_) {
          // Dismissed, aborted by the button, or no passkey here: the form stays as it was.
        }
      });
    }
  }
})();
