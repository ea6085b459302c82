// The login page needs no script to work (the form posts the token); this
// only trims what was pasted.
"use strict";
document.getElementById("login-form").addEventListener("submit", () => {
  const t = document.getElementById("token");
  t.value = t.value.trim();
});
