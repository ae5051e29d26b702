import { createApp } from 'vue';
import { createRouter, createWebHistory } from 'vue-router';
import { createAuthPlugin } from '@sekisho/client/vue';
import App from './App.vue';
import Home from './views/Home.vue';
import Office from './views/Office.vue';
import Shop from './views/Shop.vue';
import Dashboard from './views/Dashboard.vue';
import { office, shop } from './auth';
import './style.css';

const router = createRouter({
  history: createWebHistory(),
  routes: [
    { path: '/', component: Home },
    { path: '/office', component: Office },
    { path: '/shop', component: Shop },
    { path: '/dashboard', component: Dashboard },
  ],
});

// Each plugin restores its client's login at startup; `useAuth()` without an argument gets
// the shop client, `useAuth(office)` the other one.
createApp(App).use(createAuthPlugin(office)).use(createAuthPlugin(shop)).use(router).mount('#app');
